"""Device side: read handwritten digits from a camera with LiteRT and OpenCV, never TensorFlow."""
