"""What the platform adapters share, once.

splitter.py     PURE: a Markdown answer cut into messages at a length limit, code fences closed and
                reopened, never inside a grapheme cluster; the footer never alone
footer.py       PURE: the footer line of an answer, in each platform's style
delivery.py     why a sink stopped posting an answer (refused for good, or a message not taken this once),
                as the bot.ports.SinkBroken it raises, kept and logged once
"""
