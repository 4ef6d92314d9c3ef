"""Readable one-line text of the errors TensorFlow ops raise, for messages to users."""


def op_error_text(error, limit=200):
    """The first line of ``error`` without TF's ``{{function_node ...}}`` prefix and ``[Op:...]`` suffix.

    Falls back to the exception's type name when it has no message; cut to ``limit`` characters.
    """
    text = str(error).strip()
    if not text:
        return type(error).__name__
    text = text.splitlines()[0]
    if text.startswith('{{function_node') and '}}' in text:
        text = text.split('}}', 1)[1]
    return text.split(' [Op:')[0].strip()[:limit] or type(error).__name__
