# jetscale serve in a container: one JetStream-compatible replica (HTTP and OpenAI routes, gRPC, /metrics)
# on a simulated accelerator, to rehearse the real HPA on a cheap cluster (kind, GKE CPU nodes) with
# `jetscale k8s render --target kubernetes --config examples/deploy/kubernetes.yaml`. See docs/image.md.
#
#     docker build -t jetscale:0.1.0 .
#     docker run --rm -p 8000:8000 -p 9000:9000 jetscale:0.1.0
#
# The package and its dependencies are installed when the image is built; at run time nothing is
# downloaded (the server needs no network beyond its own ports) and it runs as an unprivileged user.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/jetscale && /opt/jetscale/bin/pip install .

FROM python:${PYTHON_VERSION}-slim
ENV PATH=/opt/jetscale/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=build /opt/jetscale /opt/jetscale
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin jetscale
USER 10001:10001
EXPOSE 8000 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=2)"]
ENTRYPOINT ["jetscale"]
CMD ["serve", "--preset", "v5e-8/llama2-7b", "--host", "0.0.0.0", "--port", "8000", "--grpc-port", "9000"]
