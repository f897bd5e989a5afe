"""A bare aiohttp handler returning fixed bytes: the baseline the API's throughput is compared with."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--etag", default=None)
    args = parser.parse_args()
    with open(args.body_file, "rb") as f:
        body = f.read()

    async def handler(request: web.Request) -> web.Response:
        if args.etag and request.headers.get("If-None-Match") == args.etag:
            return web.Response(status=304, headers={"ETag": args.etag})
        headers = {"ETag": args.etag} if args.etag else None
        return web.Response(body=body, content_type=args.content_type, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    print("ready", file=sys.stderr, flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
