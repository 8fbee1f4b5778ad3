"""HTML and saved pages: the blocks to translate, the English put back, the article of a page."""
