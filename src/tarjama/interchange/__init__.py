"""What client and server both read and write: responses as JSON, XLIFF and TMX."""
