"""The seven FER2013 emotion classes, in the data set's label order, and the face size the network reads."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
# The side of the square grey face crop the emotion network is trained on and given live (FER2013's).
FACE_SIZE = 48
