# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LEADFLOW_VAR_DIR=/app/var

WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
# Every package pyproject.toml installs ([tool.setuptools.packages.find]), before the
# install: a missing one is left out of site-packages (tests/leadflow/test_dockerfile.py).
COPY leadflow ./leadflow
COPY scoring ./scoring
COPY handoff ./handoff
COPY sla ./sla
COPY integrations ./integrations
COPY privacy ./privacy
RUN pip install .
COPY . .
# The production build: DEBUG off, so the manifest storage hashes and compresses every
# file (and fails the build on a reference to a missing one) as the running web does.
RUN DEBUG=0 SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0 \
    && useradd --create-home leadflow && mkdir -p /app/var && chown -R leadflow /app/var
USER leadflow
EXPOSE 8000
CMD ["gunicorn", "leadflow.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
