"""What the platform adapters share, once.

splitter.py     PURE: a Markdown answer cut into messages at a length limit, code fences closed and
                reopened, never inside a grapheme cluster; the footer never alone
footer.py       PURE: the footer line of an answer, in each platform's style
refusal.py      an answer the platform refused for good (bot.ports.SinkBroken), kept and logged once
"""
