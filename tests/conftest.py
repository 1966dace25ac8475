"""Suite-wide test configuration: the pytester fixture drives the plugin tests in tests/plugin."""

pytest_plugins = ["pytester"]
