FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DUPES_HOST=0.0.0.0 \
    DUPES_DATA_DIR=/data

WORKDIR /srv

# Dependencies first, from pyproject.toml alone, so that code changes reuse this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md ./
COPY app ./app
COPY sql ./sql
COPY migrations ./migrations
# Editable, so the package finds sql/ and migrations/ beside it.
RUN pip install --no-deps -e .

RUN useradd --create-home --uid 10001 dupes \
    && mkdir /data \
    && chown dupes:dupes /data
USER dupes
VOLUME ["/data"]
EXPOSE 8080

ENTRYPOINT ["dupes"]
CMD ["serve"]
