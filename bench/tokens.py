"""Email tokens minted and opened per second on one core, for a campaign list of
email-address contact ids, and the length of a typical token.

    python bench/tokens.py
"""

from __future__ import annotations

import time

from sitecue.tokens import TokenCodec

COUNT = 200_000
EXPIRES = 1_800_000_000


def main() -> None:
    codec = TokenCodec(["bench-secret-00000000000000000000"])
    contacts = [f"customer.{i:06d}@example.com" for i in range(COUNT)]
    codec.mint("news", contacts[0], EXPIRES)  # derive the site's key outside the timing
    start = time.perf_counter()
    tokens = [codec.mint("news", c, EXPIRES) for c in contacts]
    minted = COUNT / (time.perf_counter() - start)
    start = time.perf_counter()
    for token in tokens:
        codec.read("news", token, EXPIRES - 1)
    opened = COUNT / (time.perf_counter() - start)
    print(f"token for {contacts[0]}: {len(tokens[0])} characters, {tokens[0]}")
    print(f"minted: {minted:,.0f} tokens/s   (target: >= 20,000 tokens/s)")
    print(f"opened: {opened:,.0f} tokens/s")


if __name__ == "__main__":
    main()
