"""The HTTP service: FastAPI on uvicorn, one process owning the camera and the model."""
