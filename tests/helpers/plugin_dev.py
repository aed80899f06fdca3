"""Helpers of the plugin-author tests."""

#: makes the scaffolded 'brokendemo' plugin fail to import, on demand
BREAK_ENV = "ETL_TEST_BREAK_PLUGIN"
