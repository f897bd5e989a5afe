# Slim, non-root image of the API. In containers the database is external (MONGODB_URI):
# see docker-compose.yml for the app with a MongoDB replica set.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY schemas ./schemas
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8080 VAR_DIR=/app/var
RUN useradd --system --uid 10001 --home /app app
WORKDIR /app
COPY --from=build /install /usr/local
COPY checklists ./checklists
RUN mkdir -p /app/var && chown app:app /app/var
USER app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status == 200 else 1)"
CMD ["branch-audit", "serve"]
