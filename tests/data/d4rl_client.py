#!/usr/bin/env python3
"""A real h5py client for mopo's D4RL / Minari I/O (run from ctest; needs Debian's python3-h5py).

  d4rl_client.py write <dir>   write D4RL- and Minari-layout files the way D4RL's scripts and Minari do,
                               plus the expected qlearning_dataset output computed by a transcription of
                               D4RL's own loop (d4rl/__init__.py), for mopo to load and compare.
  d4rl_client.py check <dir>   open the files mopo wrote and check keys, dtypes, shapes, compression and values.

Exit status 0 on success; any failed check raises (non-zero exit, message on stderr).
"""
import json
import os
import sys

import h5py
import numpy as np


def handmade():
    """Episode A rows 0-3 ends in a terminal, episode B rows 4-8 in a time-out, episode C rows 9-11 is cut.
    observations[i] = (i, 100 + i, 200 + i), next_observations = observations + 1000, rewards[i] = i."""
    n = 12
    i = np.arange(n, dtype=np.float32)[:, None]
    obs = np.concatenate([i, i + 100, i + 200], axis=1).astype(np.float32)
    d = {
        "observations": obs,
        "next_observations": obs + 1000,
        "actions": np.concatenate([i * 0.01, -i * 0.01], axis=1).astype(np.float32),
        "rewards": np.arange(n, dtype=np.float32),
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": np.zeros(n, dtype=bool),
        "infos/qpos": np.concatenate([i, i * 2], axis=1).astype(np.float32),
        "infos/qvel": np.concatenate([-i, i * 3, i * 4], axis=1).astype(np.float32),
        "infos/action_log_probs": np.linspace(-3, -1, n).astype(np.float32),
    }
    d["terminals"][3] = True
    d["timeouts"][8] = True
    return d


def random_layout(seed, n, max_len, with_timeouts, dtype):
    """Many episodes: random terminals (p = 0.03 per step), a time-out every `max_len` steps."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 5)).astype(dtype)
    terminals = np.zeros(n, dtype=bool)
    timeouts = np.zeros(n, dtype=bool)
    t = 0
    for k in range(n):
        t += 1
        if t == max_len:
            timeouts[k] = True
            t = 0
        elif rng.random() < 0.03:
            terminals[k] = True
            t = 0
    d = {
        "observations": obs,
        "actions": rng.uniform(-1, 1, size=(n, 2)).astype(dtype),
        "rewards": rng.normal(size=n).astype(dtype),
        "terminals": terminals,
    }
    if with_timeouts:
        d["timeouts"] = timeouts
    return d


def d4rl_qlearning_dataset(dataset, terminate_on_end=False, max_episode_steps=1000):
    """Transcription of d4rl.qlearning_dataset (Farama-Foundation/D4RL d4rl/__init__.py)."""
    N = dataset["rewards"].shape[0]
    obs_, next_obs_, action_, reward_, done_ = [], [], [], [], []
    use_timeouts = "timeouts" in dataset
    episode_step = 0
    for i in range(N - 1):
        obs = dataset["observations"][i].astype(np.float32)
        new_obs = dataset["observations"][i + 1].astype(np.float32)
        action = dataset["actions"][i].astype(np.float32)
        reward = dataset["rewards"][i].astype(np.float32)
        done_bool = bool(dataset["terminals"][i])
        if use_timeouts:
            final_timestep = dataset["timeouts"][i]
        else:
            final_timestep = episode_step == max_episode_steps - 1
        if (not terminate_on_end) and final_timestep:
            episode_step = 0
            continue
        if done_bool or final_timestep:
            episode_step = 0
        obs_.append(obs)
        next_obs_.append(new_obs)
        action_.append(action)
        reward_.append(reward)
        done_.append(done_bool)
        episode_step += 1
    return {
        "observations": np.array(obs_),
        "actions": np.array(action_),
        "next_observations": np.array(next_obs_),
        "rewards": np.array(reward_),
        "terminals": np.array(done_),
    }


def write_compact(f, key, v):
    """A dataset of compact layout (its data inside the object header), through h5py's low-level API."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    v = np.ascontiguousarray(v)
    dsid = h5py.h5d.create(f.id, key.encode(), h5py.h5t.py_create(v.dtype, logical=True),
                           h5py.h5s.create_simple(v.shape), dcpl=dcpl)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, v)


def write_d4rl(path, d, metadata=None, rewards_2d=False, layouts=None):
    """layouts: key -> "chunked" (unfiltered, 64-row chunks, an edge chunk), "contiguous", "compact" or
    "gzip-raw-chunk" (shuffle + gzip, its first chunk stored raw with both filters marked skipped, as HDF5
    stores a chunk whose optional filter failed); every other key gzip-compressed, as D4RL writes them."""
    with h5py.File(path, "w") as f:
        for k, v in d.items():
            if k == "rewards" and rewards_2d:
                v = v[:, None]
            layout = (layouts or {}).get(k, "gzip")
            if layout == "compact":
                write_compact(f, k, v)
            elif layout == "contiguous":
                f.create_dataset(k, data=v)
            elif layout == "gzip-raw-chunk":
                ds = f.create_dataset(k, data=v, compression="gzip", shuffle=True, chunks=(64,) + v.shape[1:])
                raw = np.ascontiguousarray(v[:64]).tobytes()
                ds.id.write_direct_chunk((0,) * v.ndim, raw, filter_mask=0b11)
            elif layout == "chunked":
                f.create_dataset(k, data=v, chunks=(64,) + v.shape[1:])
            else:
                f.create_dataset(k, data=v, compression="gzip")
        for k, v in (metadata or {}).items():
            f["metadata/" + k] = v


def write(out):
    os.makedirs(out, exist_ok=True)
    # 1. Hand-made episode layout, written like D4RL's collect_data.py (float32, numpy bools, gzip).
    meta = {
        "algorithm": np.string_("SAC"),
        "iteration": np.int32(7),
        "policy/nonlinearity": np.string_("relu"),
        "policy/fc0/weight": np.arange(12, dtype=np.float32).reshape(4, 3),
        "policy/fc0/bias": np.zeros(4, dtype=np.float32),
    }
    write_d4rl(os.path.join(out, "client_handmade.hdf5"), handmade(), meta)
    # 2. Random layouts vs the transcribed qlearning_dataset (float64 replay-style; one without timeouts,
    #    one with (N, 1) rewards as in old files).
    cases = {
        "client_random": (random_layout(1, 3000, 200, True, np.float64), {}, False),
        "client_notimeouts": (random_layout(2, 2000, 50, False, np.float32), {"max_episode_steps": 50}, False),
        "client_rewards2d": (random_layout(3, 500, 100, True, np.float32), {}, True),
        "client_layouts": (random_layout(4, 700, 100, True, np.float32), {}, False),
    }
    # client_layouts: every storage layout HDF5 has, and a chunk stored raw with its filters skipped (the
    # reader checks each one's stored size).
    layouts = {"client_layouts": {"observations": "chunked", "actions": "gzip-raw-chunk", "rewards": "compact",
                                  "terminals": "compact", "timeouts": "contiguous"}}
    for name, (d, kwargs, r2d) in cases.items():
        write_d4rl(os.path.join(out, name + ".hdf5"), d, rewards_2d=r2d, layouts=layouts.get(name))
        expected = d4rl_qlearning_dataset(d, **kwargs)
        with h5py.File(os.path.join(out, name + "_expected.hdf5"), "w") as f:
            for k, v in expected.items():
                f[k] = v
    # 3. A Minari dataset (main_data.hdf5 + metadata.json): 3 episodes, observations with T + 1 rows.
    root = os.path.join(out, "minari", "mopo", "toy", "handmade-v0", "data")
    os.makedirs(root, exist_ok=True)
    lengths = [4, 6, 3]
    with h5py.File(os.path.join(root, "main_data.hdf5"), "w") as f:
        for e, t in enumerate(lengths):
            g = f.create_group("episode_%d" % e)
            g.attrs["id"] = e
            g.attrs["total_steps"] = t
            base = 100.0 * e
            o = base + np.arange(t + 1, dtype=np.float64)[:, None] * np.array([1.0, 10.0, 0.5])
            g["observations"] = o
            g["actions"] = np.full((t, 2), e, dtype=np.float32)
            g["rewards"] = base + np.arange(t, dtype=np.float64)
            g["terminations"] = np.array([k == t - 1 and e == 0 for k in range(t)])
            g["truncations"] = np.array([k == t - 1 and e == 1 for k in range(t)])
            g["infos/qpos"] = o[:, :2]  # T + 1 rows, like Minari's infos
            g["infos/qvel"] = -o[:, 2:]
    with open(os.path.join(root, "metadata.json"), "w") as f:
        json.dump({"dataset_id": "mopo/toy/handmade-v0", "total_episodes": 3, "total_steps": sum(lengths),
                   "data_format": "hdf5", "algorithm_name": "handmade"}, f)
    print("wrote client files to", out)


def check_file(path, dtype, expect):
    with h5py.File(path, "r") as f:
        keys = set()
        f.visit(lambda k: keys.add(k) if isinstance(f[k], h5py.Dataset) else None)
        want = {"observations", "next_observations", "actions", "rewards", "terminals", "timeouts",
                "infos/qpos", "infos/qvel", "infos/action_log_probs", "metadata/algorithm", "metadata/iteration",
                "metadata/policy/nonlinearity", "metadata/policy/fc0/weight", "metadata/policy/fc0/bias"}
        assert keys == want, "%s: keys %s != %s" % (path, sorted(keys), sorted(want))
        for k in ("observations", "next_observations", "actions", "rewards", "infos/qpos", "infos/qvel",
                  "infos/action_log_probs"):
            assert f[k].dtype == dtype, "%s: %s dtype %s, want %s" % (path, k, f[k].dtype, dtype)
            assert f[k].compression == "gzip", "%s: %s not gzip-compressed" % (path, k)
            assert f[k].shape == expect[k].shape, "%s: %s shape %s != %s" % (path, k, f[k].shape, expect[k].shape)
            np.testing.assert_array_equal(f[k][()], expect[k].astype(dtype), err_msg=path + ": " + k)
        for k in ("terminals", "timeouts"):
            assert f[k].dtype == np.bool_, "%s: %s dtype %s, want bool" % (path, k, f[k].dtype)
            assert f[k].shape == (12,), "%s: %s shape %s" % (path, k, f[k].shape)
            np.testing.assert_array_equal(f[k][()], expect[k], err_msg=path + ": " + k)
        assert f["metadata/algorithm"][()] == b"SAC", f["metadata/algorithm"][()]
        assert f["metadata/policy/nonlinearity"][()] == b"relu"
        assert int(f["metadata/iteration"][()]) == 7
        np.testing.assert_array_equal(f["metadata/policy/fc0/weight"][()],
                                      np.arange(12, dtype=np.float32).reshape(4, 3))
    print("ok:", path)


def check(out):
    expect = handmade()
    check_file(os.path.join(out, "mopo_float32.hdf5"), np.float32, expect)
    check_file(os.path.join(out, "mopo_float64.hdf5"), np.float64, expect)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
