"""Identity cards (thẻ căn cước): card data, artwork and chip contents."""
