def write_report(out_dir, report_cfg):
    raise NotImplementedError
