# A slim, non-root image serving the demo config: docker run -p 8000:8000 sitecue
# With the PostgreSQL driver, so the same image runs the nodes of deploy/compose.yaml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SITECUE_CONFIG_DIR=/app/config SITECUE_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
RUN pip install --no-cache-dir '.[postgres]' && rm -rf server
COPY config ./config
RUN useradd --system --uid 10001 sitecue && mkdir /data && chown sitecue /data
USER sitecue
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/sc/healthz')"
CMD ["sitecue", "demo", "--host", "0.0.0.0", "--port", "8000"]
