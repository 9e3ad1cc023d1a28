"""Export runs into the UIs people already run: TensorBoard event folders and an MLflow tracking
store. dlcli's own files stay the source of truth; an export can be repeated and replaces, never
duplicates. The exporters' libraries are optional extras, imported only when a command exports."""
