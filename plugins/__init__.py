"""DistCache's default plugins, imported as ``distcache_plugins``."""
