"""/docs and /redoc render on a closed network: every asset they load is served by the platform.

A county's intranet often reaches no CDN; FastAPI's default pages fetch Swagger UI and ReDoc
from jsdelivr and show a blank page there.
"""

from __future__ import annotations

import re

import httpx
import pytest

from gongkai.runtime.host import make_app


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_page_loads_only_assets_the_platform_serves(page: str) -> None:
    app = make_app([])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gongkai.local"
    ) as client:
        html = (await client.get(page)).text
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
        assert urls, html[:500]
        external = [u for u in urls if re.match(r"(https?:)?//", u)]
        assert external == []
        for url in urls:
            r = await client.get(url)
            assert r.status_code == 200, url
            assert len(r.content) > 100, url
