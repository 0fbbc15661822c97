"""The Discord adapter (discord.py), started by `seedbot run` when DISCORD_BOT_TOKEN is set.

adapter.py       DiscordAdapter: login, gateway task, READY or a ConfigError, drain and close
client.py        the discord.Client / AutoShardedClient subclass: intents, on_message, command sync
listeners.py     a message or slash command -> Incoming -> ChatService.handle, in a tracked task
commands.py      /ask, /review, /budget show|set, /spend
routing.py       PURE: which messages are answered, where, under which thread key
split_logic.py   PURE: Markdown into <= 2,000-character messages, code fences closed and reopened
sink.py          the ReplySink: paced edits, overflow into new messages, footer, fallbacks
transport.py     where messages go: a channel, a thread opened on first use, an interaction response
files.py         attachments: judged by name and size before download, read, or refused in a sentence
notifier.py      bot.ports.Notifier: DMs and channel notices
"""
