"""Evaluation against the simulator: rollouts of the world model beside the ground truth
under the same actions, and the metrics that compare them."""
