# The reference proxy, for deployment. Build: docker build -t vapi-proxy .
# Run:   docker run -p 8080:8080 -e OPENAI_API_KEY -e VAPI_HARNESS_PROXY_API_KEY \
#          -e VAPI_HARNESS_PROXY_UPSTREAM_URL=https://api.openai.com/v1 vapi-proxy
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY harness ./harness
COPY mock_vapi ./mock_vapi
COPY reference_proxy ./reference_proxy
RUN pip install --no-cache-dir . && useradd --create-home proxy
USER proxy
ENV VAPI_HARNESS_PROXY_HOST=0.0.0.0 VAPI_HARNESS_PROXY_PORT=8080
EXPOSE 8080
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
# uvicorn lets in-flight streams finish for up to 30 s on SIGTERM.
CMD ["vapi-harness", "proxy"]
