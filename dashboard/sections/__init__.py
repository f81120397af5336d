"""What the pages are made of: each function draws one section of one page."""
