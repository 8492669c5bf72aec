"""A minimal Django project served by greenserve in tests/test_django.py."""
