"""Officers of the police who keep the register, their roles and areas."""
