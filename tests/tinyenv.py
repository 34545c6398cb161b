"""A user's own environment, for `--env tests.tinyenv:Tiny-v0` (gymnasium's module:EnvId):
importing this module registers Tiny-v0, a 2-d point pushed by a 1-d Box action."""

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Tiny(gym.Env):
    """obs [x, v] in [-10, 10]^2, action a in [-1, 1]: v += 0.1 a, x += 0.1 v; reward -|x|."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self.state.copy(), {}

    def step(self, action):
        x, v = self.state
        v = float(np.clip(v + 0.1 * float(action[0]), -10.0, 10.0))
        x = float(np.clip(x + 0.1 * v, -10.0, 10.0))
        self.state = np.array([x, v], np.float32)
        return self.state.copy(), -abs(x), False, False, {}


gym.register("Tiny-v0", entry_point=Tiny, max_episode_steps=50)
