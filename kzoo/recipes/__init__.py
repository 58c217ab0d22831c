"""What runs behind each command: `pretrain` (kzoo pretrain), `finetune` and `finetune_tasks` (kzoo finetune),
`distill` (kzoo distill). Each takes a config dataclass and writes one output folder."""
