"""``cluster:``, ``similar-to:`` and ``vhash:`` searches and vhash neighbours in ``similar_files``."""

from __future__ import annotations

import pytest

from kinfile import clusters, search
from kinfile.errors import InvalidArgumentError
from kinfile.services import Services
from kinfile.settings import Settings
from tests.clusters.day import DAY, LATE_ARRIVAL, NEXT_DAY, analysed, build_day, epoch, store_file


@pytest.fixture
def services(backend_settings: Settings) -> tuple[Services, dict[str, str]]:
    s = Services(backend_settings)
    return s, build_day(s.store)


def found(services: Services, query: str) -> set[str]:
    return {hit.sha256 for hit in search.search(services, query, limit=40).hits}


def test_cluster_modifier_matches_the_cluster(services: tuple[Services, dict[str, str]]) -> None:
    s, shas = services
    day = clusters.day_clusters(s.store, DAY)
    setx = [
        shas[n] for n in ("setx_wine8.0-amd64.exe_", "setx_wine8.0-i386.exe_", "setx_wine10.0-amd64.exe_")
    ]
    cid = day.clusters[0].cluster_id(DAY)
    assert found(s, f'cluster:"{cid}"') == set(setx)
    vhash = day.clusters[0].vhash
    assert found(s, f'cluster:"{vhash} {DAY}"') == set(setx)
    assert found(s, f'cluster:"vhash {vhash} {NEXT_DAY}"') == set()
    assert found(s, f"vhash:{vhash}") == set(setx)
    # a file of that vhash first seen on another day is not a member of the day's cluster
    store_file(s.store, "setx_wine8.0-amd64.exe_", epoch(NEXT_DAY))
    assert found(s, f'cluster:"{cid}"') == set(setx)
    for bad in ('cluster:"vhash nothex 2024-03-05"', f'cluster:"vhash {vhash} 2024-3-5"', "cluster:x"):
        with pytest.raises(InvalidArgumentError):
            search.search(s, bad)


def test_similar_to(services: tuple[Services, dict[str, str]]) -> None:
    s, shas = services
    target = analysed("msimsg_wine8.0-i386.dll_").record
    others = {shas["msimsg_wine8.0-amd64.dll_"], shas["msimsg_wine10.0-amd64.dll_"]}
    assert found(s, f"similar-to:{target.sha256}") == others
    assert found(s, f"similar-to:{target.md5.upper()}") == others
    assert found(s, f"similar-to:{shas['arp_wine8.0-amd64.exe_']}") == set()
    assert found(s, f"similar-to:{'0' * 64}") == set()
    store_file(s.store, LATE_ARRIVAL, epoch(DAY, 23))
    assert found(s, f"similar-to:{shas['incident-report_v1_v1.rtf_']}") == {
        analysed(LATE_ARRIVAL).record.sha256
    }
    with pytest.raises(InvalidArgumentError):
        search.search(s, "similar-to:nothash")


def test_similar_files_has_vhash_neighbours(services: tuple[Services, dict[str, str]]) -> None:
    s, shas = services
    items = search.similar_files(s, shas["setx_upx-default.exe_"])
    by_id = {i["id"]: i["context_attributes"] for i in items}
    assert "vhash" in by_id[shas["setx_upx-lzma.exe_"]]["vectors"]
