"""The fixed bytes the bare view returns and nginx serves, so both yardsticks move the same payload."""

BARE_BODY = b'{"bench": "' + b"x" * 900 + b'"}'
