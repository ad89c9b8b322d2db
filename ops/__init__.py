"""Operations endpoints that read across the apps (the top layer: nothing imports it)."""
