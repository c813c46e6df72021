"""Dunning engine: who is contacted, when, how and in what tone; planner, dispatcher, timeline."""
