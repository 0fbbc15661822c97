"""The Discord adapter (discord.py), started by `seedbot run` when DISCORD_BOT_TOKEN is set.

adapter.py       DiscordAdapter: login, gateway task, READY or a ConfigError, drain and close
client.py        the discord.Client / AutoShardedClient subclass: intents, on_message, command sync
listeners.py     a message or slash command -> Incoming -> the answer supervisor, in a tracked task
routing.py       PURE: which messages are answered, where, under which thread key
commands.py      /ask, /review, /budget show|set, /spend
sink.py          the ReplySink: paced edits, overflow into new messages, footer, fallbacks
transport.py     where messages go: a channel, a thread opened on first use, an interaction response
controls.py      the Stop and feedback buttons on answers, and their clicks
invite.py        the OAuth2 invite URL with exactly the permissions used
files.py         attachments: judged by adapters.common.attachments, read, or refused in a sentence
notifier.py      bot.ports.Notifier: DMs and channel notices
Recorded MESSAGE_CREATE payloads for the routing tests are in tests/discord/payloads/.
"""
