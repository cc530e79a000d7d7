# One image for the gateway, the workers and the migration job.
# The gateway never imports torch; the image carries it for the workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# CUDA build of torch for the GPU workers. For a CPU-only image build with
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124
ARG TORCH_SPEC="torch>=2.4,<2.15"
RUN pip install --index-url "${TORCH_INDEX_URL}" "${TORCH_SPEC}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY rl4pix_core ./rl4pix_core
COPY rl4pix_cli ./rl4pix_cli
COPY service ./service
COPY workers ./workers
COPY migrations ./migrations
RUN pip install .

RUN useradd --create-home --uid 1000 rl4pix \
    && mkdir -p /data /cache/huggingface \
    && chown rl4pix /data /cache/huggingface
USER rl4pix
ENV RL4PIX_DATA_DIR=/data
WORKDIR /data
EXPOSE 8000
CMD ["rl4pix", "serve", "--host", "0.0.0.0", "--port", "8000"]
