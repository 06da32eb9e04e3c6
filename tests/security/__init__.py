"""Security test data: hostile inputs as plain data, shared by unit and end-to-end tests."""
