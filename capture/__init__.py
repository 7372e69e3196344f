"""Capture: turns a source (screen, webcam, video, images) into frames and frames into observations."""
