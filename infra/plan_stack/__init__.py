"""The stack planner: `plan_stack(stack_name, config)` decides the whole stack once (`StackPlan`,
in `stack.py`); the edge's values live in `infra.stack_plan`, which is all an edge component imports,
and Airflow's in `infra.airflow.plan`."""
