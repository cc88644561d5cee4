"""The transcriber's extras on a user message, as Vapi adds them when the assistant's model enables
`wordLevelConfidenceEnabled` (word confidences) or `emotionRecognitionEnabled` (the caller's emotion).

That Vapi adds something is documented (`CustomLLMModel` in Vapi's OpenAPI spec, high confidence); the shape is
not (low confidence). Our guess, in the user message's `metadata`, as the protocol notes place word confidences
(notes §10.5), with Deepgram's word fields (the only transcriber that gives word confidences to Vapi):

    {"role": "user", "content": "Do you open tomorrow?",
     "metadata": {"wordLevelConfidence": [{"word": "Do", "confidence": 0.95}, ...],
                  "emotion": {"emotion": "neutral", "confidence": 0.9}}}

The call simulator and `vapi-harness check` both shape user messages here, so a better-known shape is changed
in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["EMOTION_FIELD", "WORD_CONFIDENCE_FIELD", "extra_fields", "user_message"]

WORD_CONFIDENCE_FIELD = "wordLevelConfidence"  # metadata.wordLevelConfidence: [{word, confidence}, ...]
EMOTION_FIELD = "emotion"  # metadata.emotion: {emotion, confidence}
WORD_CONFIDENCE = 0.95  # what a clean phone line gives a clearly spoken word
EMOTION = {"emotion": "neutral", "confidence": 0.9}


def user_message(text: str, *, word_confidence: bool, emotion: bool) -> dict[str, Any]:
    """The user message Vapi sends for the utterance `text`, with the extras the flags switch on (none: the
    plain `{role, content}` message)."""
    message: dict[str, Any] = {"role": "user", "content": text}
    metadata: dict[str, Any] = {}
    if word_confidence:
        metadata[WORD_CONFIDENCE_FIELD] = [{"word": word, "confidence": WORD_CONFIDENCE} for word in text.split()]
    if emotion:
        metadata[EMOTION_FIELD] = dict(EMOTION)
    if metadata:
        message["metadata"] = metadata
    return message


def extra_fields(messages: Any) -> list[str]:
    """The transcriber extras that `messages` (a request's `messages`) carry, as paths, for a message that names
    them: `["metadata.wordLevelConfidence", "metadata.emotion"]`; [] when there are none."""
    found: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        metadata = message.get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        found += [f"metadata.{k}" for k in (WORD_CONFIDENCE_FIELD, EMOTION_FIELD) if k in metadata]
    return list(dict.fromkeys(found))
