"""Safety data: sources from pinned wheels and our own sets, one taxonomy, leak-proof splits."""

from breakfix.data.catalog import Catalog, check, load_catalog
from breakfix.data.sources import SOURCES
from breakfix.data.taxonomy import BENIGN, CATEGORIES

__all__ = ["BENIGN", "CATEGORIES", "Catalog", "SOURCES", "check", "load_catalog"]
