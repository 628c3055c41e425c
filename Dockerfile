# One image for the web server and the CPU workers. The GPU worker builds it with TORCH_CUDA=cu128,
# which swaps the CPU torch wheel for a CUDA build of the same release.
FROM python:3.11-slim
ARG TORCH_CUDA=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# constraints.txt: the releases CI tests the hub with (pyproject.toml declares the library's ranges only).
COPY pyproject.toml README.md constraints.txt ./
COPY adapters_core adapters_core
COPY hub hub
COPY frontend frontend
COPY manage.py gunicorn.conf.py ./
RUN if [ -n "$TORCH_CUDA" ]; then \
        pip install --no-cache-dir torch==2.13.0 --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}"; \
    else \
        pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; \
    fi \
 && pip install --no-cache-dir ".[server]" -c constraints.txt
RUN useradd --create-home adapterhub && mkdir -p /data/media /data/static && chown adapterhub /data/media /data/static
USER adapterhub
EXPOSE 8000
CMD ["gunicorn", "hub.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
