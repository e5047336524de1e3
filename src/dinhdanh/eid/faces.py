"""Matching a captured face against the register's photo (the chip card's DG2).

``FaceMatcher`` is the seam: ``face_recognition`` (dlib, the optional extra ``dinhdanh[faces]``)
implements it when it is importable. Without a matcher a registration is never approved by the
machine: it waits for an officer's review (``registration.review``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

MAX_IMAGE = 2_000_000  # bytes of a captured JPEG


@dataclass(frozen=True, slots=True)
class FaceResult:
    outcome: str  # "match" / "no_match" / "no_face" (none found in one of the images)
    distance: float | None = None


class FaceMatcher(Protocol):
    name: str

    def compare(self, probe: bytes, reference: bytes) -> FaceResult:
        """Compare a captured face (``probe``) with the register's photo (``reference``)."""
        ...


class FaceRecognitionMatcher:
    """dlib's ResNet face embeddings through ``face_recognition``; distance <= 0.6 is the same person."""

    name = "face_recognition"

    def __init__(self, tolerance: float = 0.6):
        import face_recognition  # noqa: F401  (ImportError when the extra is not installed)

        self.tolerance = tolerance

    def _encoding(self, image: bytes):
        import face_recognition

        found = face_recognition.face_encodings(face_recognition.load_image_file(io.BytesIO(image)))
        return found[0] if found else None

    def compare(self, probe: bytes, reference: bytes) -> FaceResult:
        import face_recognition

        a, b = self._encoding(probe), self._encoding(reference)
        if a is None or b is None:
            return FaceResult("no_face")
        distance = float(face_recognition.face_distance([b], a)[0])
        return FaceResult("match" if distance <= self.tolerance else "no_match", round(distance, 4))


_default: list[FaceMatcher | None] = []


def default_matcher() -> FaceMatcher | None:
    """The installed matcher, or None (then registrations go to an officer)."""
    if not _default:
        try:
            _default.append(FaceRecognitionMatcher())
        except ImportError:
            _default.append(None)
    return _default[0]


def is_jpeg(image: bytes) -> bool:
    """A JPEG that Pillow can open (a captured face must be one)."""
    if not image.startswith(b"\xff\xd8\xff") or len(image) > MAX_IMAGE:
        return False
    from PIL import Image

    try:
        with Image.open(io.BytesIO(image)) as img:
            img.verify()
            return img.format == "JPEG"
    except Exception:  # Pillow raises many kinds on damaged input
        return False
