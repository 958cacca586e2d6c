"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web

from app.auth import Principal, TokenAuthenticator
from app.db import Database
from app.metadata import ModelCache
from app.settings import Settings
from app.web.routing import Endpoint

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
AUTHENTICATOR = web.AppKey("authenticator", TokenAuthenticator)
MODELS = web.AppKey("models", ModelCache)
DSN = web.AppKey("dsn", str)
ENDPOINTS = web.AppKey("endpoints", dict[tuple[str, str], Endpoint])

PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
