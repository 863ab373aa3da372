"""The Vivado block design of a Zynq deploy (``hwgen deploy OUT --board pynq-z1|pynq-z2|zcu104``).

Generated, not run here (no Vivado): :func:`write_xilinx` writes into the deploy directory

* ``rtl/``: the build's Verilog and ROM files, and ``hwgen_axis_wrapper.v`` (:func:`wrapper`):
  ``hwgen_top`` between an AXI DMA's streams — input words taken from the low ``tdata_bits`` of
  the DMA's MM2S stream, output words zero-extended to the S2MM stream's width, ``tlast`` on the
  last word of every output frame (``hwgen_top`` has no ``tlast``; the DMA ends a receive at it),
  ``tkeep`` all ones, active-low ``aresetn`` to the core's active-high ``rst``;
* ``bd.tcl`` (:func:`bd_tcl`): project, block design (processing_system7 or zynq_ultra_ps_e, the
  AXI DMA in simple mode, the wrapper, interconnects, PL clock 0 and its reset), synthesis,
  implementation, ``write_bitstream``, and ``hwgen.bit`` + ``hwgen.hwh`` copied beside it (what
  ``pynq.Overlay`` loads).
"""

import os
import shutil

from .pynq_driver import BITFILE, DMA_NAME, dma_bits

__all__ = ["write_xilinx", "bd_tcl", "wrapper"]


def wrapper(manifest):
    """The Verilog of ``hwgen_axis_wrapper`` for the build's streams."""
    mi, mo = manifest["input"], manifest["output"]
    ib, ob = int(mi["tdata_bits"]), int(mo["tdata_bits"])
    dib, dob = dma_bits(ib), dma_bits(ob)
    words = int(mo["words_per_frame"])
    cw = max(1, (words - 1).bit_length())
    pad = f"{{{{{dob - ob}{{1'b0}}}}, core_tdata}}" if dob > ob else "core_tdata"
    top = manifest.get("top", "hwgen_top")
    return f"""// hwgen_axis_wrapper: {top} between an AXI DMA's streams. Written by hwgen deploy (generated, not run here).
// Input words: the low {ib} bits of the {dib}-bit MM2S stream (tlast ignored); output words: {ob} bits
// zero-extended to the {dob}-bit S2MM stream, tlast on word {words - 1} of each {words}-word frame.
`default_nettype none
module hwgen_axis_wrapper (
    (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 aclk CLK" *)
    (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF s_axis:m_axis, ASSOCIATED_RESET aresetn" *)
    input  wire            aclk,
    (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 aresetn RST" *)
    (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)
    input  wire            aresetn,
    input  wire [{dib - 1}:0]   s_axis_tdata,
    input  wire            s_axis_tvalid,
    output wire            s_axis_tready,
    input  wire            s_axis_tlast,
    output wire [{dob - 1}:0]   m_axis_tdata,
    output wire [{dob // 8 - 1}:0]   m_axis_tkeep,
    output wire            m_axis_tvalid,
    input  wire            m_axis_tready,
    output wire            m_axis_tlast
);
    wire [{ob - 1}:0] core_tdata;
    {top} core (
        .clk(aclk), .rst(~aresetn),
        .s_axis_tdata(s_axis_tdata[{ib - 1}:0]), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
        .m_axis_tdata(core_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );
    assign m_axis_tdata = {pad};
    assign m_axis_tkeep = {{{dob // 8}{{1'b1}}}};
    reg [{cw - 1}:0] word;
    always @(posedge aclk)
        if (!aresetn)
            word <= {cw}'d0;
        else if (m_axis_tvalid && m_axis_tready)
            word <= (word == {cw}'d{words - 1}) ? {cw}'d0 : word + {cw}'d1;
    assign m_axis_tlast = (word == {cw}'d{words - 1});
endmodule
`default_nettype wire
"""


def bd_tcl(manifest, board, spec, sources):
    """The block design script for ``board`` (``spec``: part, board part, ps) over ``sources`` (relative to deploy/)."""
    mi, mo = manifest["input"], manifest["output"]
    dib, dob = dma_bits(int(mi["tdata_bits"])), dma_bits(int(mo["tdata_bits"]))
    mhz = float(manifest.get("clock_mhz", 100.0))
    files = " ".join(f"[file join $here {s}]" for s in sources)
    if spec["ps"] == "ps7":
        ps = f"""create_bd_cell -type ip -vlnv [ipdef xilinx.com:ip:processing_system7] ps
apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 -config {{make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"}} [get_bd_cells ps]
set_property -dict [list CONFIG.PCW_USE_M_AXI_GP0 {{1}} CONFIG.PCW_USE_S_AXI_HP0 {{1}} CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {{{mhz:g}}}] [get_bd_cells ps]"""
        master, slave, clk = "/ps/M_AXI_GP0", "/ps/S_AXI_HP0", "ps/FCLK_CLK0"
    else:
        ps = f"""create_bd_cell -type ip -vlnv [ipdef xilinx.com:ip:zynq_ultra_ps_e] ps
apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {{apply_board_preset "1"}} [get_bd_cells ps]
set_property -dict [list CONFIG.PSU__USE__M_AXI_GP0 {{1}} CONFIG.PSU__USE__M_AXI_GP1 {{0}} CONFIG.PSU__USE__M_AXI_GP2 {{0}} CONFIG.PSU__USE__S_AXI_GP2 {{1}} CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{{mhz:g}}}] [get_bd_cells ps]"""
        master, slave, clk = "/ps/M_AXI_HPM0_FPD", "/ps/S_AXI_HP0_FPD", "ps/pl_clk0"
    name = manifest.get("name", "model")
    return f"""# Vivado block design of {name} on {board}: the Zynq's processing system, an AXI DMA and the hwgen
# accelerator. Written by hwgen deploy; generated, not run here (no Vivado).
#
#   vivado -mode batch -source bd.tcl       -> {BITFILE} and hwgen.hwh beside this script (for pynq.Overlay)
#
# Part {spec['part']} (board part {spec['board_part']} when its board files are installed).
# The DMA ({DMA_NAME}, simple mode): MM2S ({dib} bits) -> accelerator s_axis; accelerator m_axis -> S2MM ({dob} bits).
# Control: the PS's general-purpose master -> DMA AXI-Lite; data: DMA masters -> the PS's high-performance port.
# Clock: PL clock 0 at {mhz:g} MHz (the build's clock target) for the DMA and the accelerator; reset: its proc_sys_reset.

set here [file dirname [file normalize [info script]]]
proc ipdef {{vlnv}} {{ return [lindex [lsort [get_ipdefs -all "$vlnv:*"]] end] }}

create_project -force hwgen_pynq [file join $here vivado] -part {spec['part']}
catch {{ set_property board_part {spec['board_part']} [current_project] }}
add_files -norecurse [list {files}]
update_compile_order -fileset sources_1

create_bd_design hwgen
{ps}

create_bd_cell -type ip -vlnv [ipdef xilinx.com:ip:axi_dma] {DMA_NAME}
set_property -dict [list CONFIG.c_include_sg {{0}} CONFIG.c_sg_length_width {{26}} CONFIG.c_sg_include_stscntrl_strm {{0}} \\
    CONFIG.c_m_axi_mm2s_data_width {{{dib}}} CONFIG.c_m_axis_mm2s_tdata_width {{{dib}}} \\
    CONFIG.c_m_axi_s2mm_data_width {{{dob}}} CONFIG.c_s_axis_s2mm_tdata_width {{{dob}}} \\
    CONFIG.c_mm2s_burst_size {{16}} CONFIG.c_s2mm_burst_size {{16}}] [get_bd_cells {DMA_NAME}]

create_bd_cell -type module -reference hwgen_axis_wrapper accel
connect_bd_intf_net [get_bd_intf_pins {DMA_NAME}/M_AXIS_MM2S] [get_bd_intf_pins accel/s_axis]
connect_bd_intf_net [get_bd_intf_pins accel/m_axis] [get_bd_intf_pins {DMA_NAME}/S_AXIS_S2MM]

apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {{Master "{master}" Clk "Auto"}} [get_bd_intf_pins {DMA_NAME}/S_AXI_LITE]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {{Slave "{slave}" Clk "Auto"}} [get_bd_intf_pins {DMA_NAME}/M_AXI_MM2S]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {{Slave "{slave}" Clk "Auto"}} [get_bd_intf_pins {DMA_NAME}/M_AXI_S2MM]

connect_bd_net [get_bd_pins {clk}] [get_bd_pins accel/aclk]
set rst [lindex [get_bd_cells -filter {{VLNV =~ "xilinx.com:ip:proc_sys_reset:*"}}] 0]
connect_bd_net [get_bd_pins $rst/peripheral_aresetn] [get_bd_pins accel/aresetn]

assign_bd_address
validate_bd_design
save_bd_design

set wrapper [make_wrapper -files [get_files hwgen.bd] -top]
add_files -norecurse $wrapper
set_property top hwgen_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs 4
wait_on_run impl_1
if {{[get_property PROGRESS [get_runs impl_1]] ne "100%"}} {{
    error "impl_1 failed: see [file join $here vivado hwgen_pynq.runs impl_1 runme.log]"
}}
file copy -force [file join $here vivado hwgen_pynq.runs impl_1 hwgen_wrapper.bit] [file join $here {BITFILE}]
set hwh [lindex [get_files -all -of_objects [get_files hwgen.bd] *.hwh] 0]
file copy -force $hwh [file join $here hwgen.hwh]
puts "hwgen: wrote [file join $here {BITFILE}] and [file join $here hwgen.hwh]"
"""


def write_xilinx(dest, out, manifest, board, spec):
    """Write ``rtl/`` and ``bd.tcl`` of a Zynq deploy into ``dest`` (the build is ``out``)."""
    sources = []
    for rel in list(manifest["verilog"]) + list(manifest.get("memfiles", [])):
        d = os.path.join(dest, "rtl", os.path.basename(rel))
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copyfile(os.path.join(out, rel), d)
        sources.append(f"rtl/{os.path.basename(rel)}")
    with open(os.path.join(dest, "rtl", "hwgen_axis_wrapper.v"), "w") as f:
        f.write(wrapper(manifest))
    sources.append("rtl/hwgen_axis_wrapper.v")
    with open(os.path.join(dest, "bd.tcl"), "w") as f:
        f.write(bd_tcl(manifest, board, spec, sources))
