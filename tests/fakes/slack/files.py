"""Files the bot uploads (the two-step external upload) and files.info."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from .checks import require
from .model import JSON, FakeFile, Message, SlackError
from .state import SlackState


class Files:
    """files.getUploadURLExternal, files.completeUploadExternal and files.info; `uploads` maps upload ids
    (the last part of an upload URL) to the file they fill."""

    def __init__(self, state: SlackState, base_url: Callable[[], str], bot_message: Callable[..., Message]) -> None:
        self.state = state
        self.config = state.config
        self._base_url = base_url
        self._bot_message = bot_message
        self.uploads: dict[str, str] = {}

    def handlers(self) -> dict[str, Callable[[JSON], JSON]]:
        return {"files.getUploadURLExternal": self.get_upload_url,
                "files.completeUploadExternal": self.complete_upload, "files.info": self.files_info}

    def get_upload_url(self, params: JSON) -> JSON:
        require(params, "filename", "length")
        try:
            length = int(params["length"])
        except ValueError:
            raise SlackError("invalid_arguments", "length must be an integer") from None
        name = str(params["filename"])
        file = FakeFile(
            id=self.state.new_id("F"),
            name=name,
            title=name,
            mimetype=guess_mimetype(name),
            filetype=name.rsplit(".", 1)[-1] if "." in name else "binary",
            user=self.config.bot_user_id,
            created=int(time.time()),
            declared_length=length,
        )
        self.state.files[file.id] = file
        upload_id = secrets.token_urlsafe(12)
        self.uploads[upload_id] = file.id
        return {"upload_url": f"{self._base_url()}/upload/v1/{upload_id}", "file_id": file.id}

    def complete_upload(self, params: JSON) -> JSON:
        require(params, "files")
        files: list[FakeFile] = []
        for item in params["files"]:
            file = self.state.files.get(str(item.get("id")))
            if file is None or file.content is None:
                raise SlackError("file_not_found")
            file.title = item.get("title") or file.title
            files.append(file)
        channels = [params["channel_id"]] if params.get("channel_id") else []
        channels += [c for c in str(params.get("channels") or "").split(",") if c]
        for channel in channels:
            for file in files:
                file.channels.append(channel)
            shared = [f.to_api(self._base_url(), self.config.team_id) for f in files]
            message = self._bot_message(
                channel,
                params.get("thread_ts"),
                text=params.get("initial_comment") or "",
                files=shared,
            )
            self.state.add_message(message, "files.completeUploadExternal")
        return {"files": [{"id": f.id, "title": f.title} for f in files]}

    def files_info(self, params: JSON) -> JSON:
        require(params, "file")
        file = self.state.files.get(str(params["file"]))
        if file is None:
            raise SlackError("file_not_found")
        return {"file": file.to_api(self._base_url(), self.config.team_id)}


def guess_mimetype(name: str) -> str:
    known = {
        "png": "image/png",
        "jpg": "image/jpeg",
        "gif": "image/gif",
        "pdf": "application/pdf",
        "txt": "text/plain",
        "diff": "text/x-diff",
        "patch": "text/x-diff",
        "json": "application/json",
    }
    return known.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")
