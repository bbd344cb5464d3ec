"""Reading and writing scans (NIfTI, DICOM) and discovering dataset layouts."""
