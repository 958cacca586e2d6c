"""Match keys: how record values are reduced to the keys duplicates are grouped on."""
