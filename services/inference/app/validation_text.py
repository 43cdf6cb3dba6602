"""Pydantic's validation errors as one line a client can read (the own API's ``detail``, the V2 protocol's
``error``); no HTTP here, so the domain (``v2_codec``) and the HTTP layer (``inputs``, ``errors``) share it."""


def describe_validation_errors(errors: list[dict], limit: int = 3) -> str:
    """Pydantic/FastAPI errors -> 'pixels.3.5: Input should be ...; top_k: ...' (the first few)."""
    parts = []
    for item in errors[:limit]:
        location = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path"))
        parts.append(f"{location or 'body'}: {item.get('msg', 'invalid')}")
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more errors)" if more > 0 else "")
