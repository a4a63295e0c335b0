"""The bottom layer: class-name files and test vocabularies, pictures of segmentations, files, measuring tools."""
