"""The Discord adapter (discord.py), started by `seedbot run` when DISCORD_BOT_TOKEN is set.

adapter.py       DiscordAdapter: login, gateway task, READY or a ConfigError, drain and close
client.py        the discord.Client / AutoShardedClient subclass: intents, on_message, command sync
conversation.py  a message or slash command -> Incoming -> ChatService.handle, in a tracked task
commands.py      /ask, /review, /budget show|set, /spend
events_logic.py  PURE: which messages are answered, where, under which thread key
sink.py          the ReplySink: paced edits, overflow into new messages, footer, fallbacks
targets.py       where messages go: a channel, a thread opened on first use, an interaction response
controls.py      the Stop and feedback buttons on answers, and their clicks
invite.py        the OAuth2 invite URL with exactly the permissions used
files.py         attachments: judged by name and size before download, read, or refused in a sentence
notifier.py      bot.ports.Notifier: DMs and channel notices
fixtures/        MESSAGE_CREATE payloads with their channels, for the events_logic tests
"""
