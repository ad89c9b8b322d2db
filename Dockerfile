# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LEADFLOW_VAR_DIR=/app/var

WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
# The dependencies first, from pyproject.toml alone: a layer that is rebuilt only when
# they change. Then the whole project, and LeadFlow itself on top: every package
# pyproject.toml lists is in place before the install, whatever apps are added later.
COPY pyproject.toml README.md ./
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', *deps])"
COPY . .
RUN pip install --no-deps .
# The production build: DEBUG off, so the manifest storage hashes and compresses every
# file (and fails the build on a reference to a missing one) as the running web does.
RUN DEBUG=0 SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0 \
    && useradd --create-home leadflow && mkdir -p /app/var && chown -R leadflow /app/var
USER leadflow
EXPOSE 8000
CMD ["gunicorn", "leadflow.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
