"""The Slack adapter: Slack events in, answers streamed back into threads.

    adapter.py        SlackAdapter: Bolt AsyncApp, HTTP (/slack/events) and Socket Mode, OAuth installs
    http_edge.py      signed HTTP requests checked before Bolt sees them; event_callbacks acked early
    listeners.py      Bolt listeners (events, agent view, actions, /seed) -> the answer supervisor
    routing.py        pure: event payload -> Incoming, or why it is ignored
    agent.py          agent view (Messages tab prompts, app context), Stop/feedback clicks, session stop
    controls.py       pure: the Stop and feedback buttons as Block Kit, block_actions payloads parsed
    manifest.py       the app manifest (YAML) from what listeners.py registers
    sink.py           the ReplySink: splitting, pacing, steps, assistant status
    transport.py      one Slack message: chat streaming, falling back to postMessage + update
    errors.py         Slack's error codes as they decide what an answer does next (refused for good, ...)
    recovery.py       crash recovery's Slack part: a dead process's reply finished with the notice
    files.py          shared files: downloaded with the bot token, judged by adapters.common.attachments
    users.py          display names from users.info, in a bounded LRU
    names.py          channel and people names for reports (conversations.info)
    notifier.py       bot.ports.Notifier: DMs (with a chart) and channel posts for the scheduler
    workspaces.py     the workspaces served: one bot token, or OAuth installations
    install_tables.py slack-sdk's installation and OAuth state tables, on our schema

Recorded Events API payloads for the routing tests are in tests/slack/payloads/.
A conversation is a Slack thread: its key is the message's thread_ts, or the message's own ts when it
starts one (also in DMs, where Slack's streaming can only answer inside a thread).
"""
