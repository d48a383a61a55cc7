"""Administration: the remote AE registry and archive statistics."""

from __future__ import annotations

from hounsfield.ports.index import IndexStore, RemoteAE, Stats


class AdminService:
    def __init__(self, index: IndexStore) -> None:
        self.index = index

    def put_remote_ae(self, ae: RemoteAE) -> bool:
        return self.index.put_remote_ae(ae)

    def get_remote_ae(self, aet: str) -> RemoteAE | None:
        return self.index.get_remote_ae(aet)

    def list_remote_aes(self) -> list[RemoteAE]:
        return self.index.list_remote_aes()

    def delete_remote_ae(self, aet: str) -> bool:
        return self.index.delete_remote_ae(aet)

    def stats(self) -> list[Stats]:
        return self.index.stats()
